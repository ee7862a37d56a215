// `utm-links`: build, audit and check UTM-tagged campaign links. The link logic lives in
// utm.js (pure, tested under plain node); this module declares the tools and does the one
// thing that needs the host: `check_link` requests the link through the egress gate.

import { definePlugin, http, log, s, tool, ToolError } from '#tollgate';
import { PARAMS, UtmError, auditLinks, buildLink, parseUrl, utmPreserved } from './utm.js';

/** Runs `fn`, turning a UtmError into `invalid-input` for the model. */
function checked(fn) {
  try {
    return fn();
  } catch (e) {
    if (e instanceof UtmError) throw ToolError.invalidInput(e.message);
    throw e;
  }
}

const value = (description) => s.string({ minLength: 1, maxLength: 200, description });

const buildTool = tool({
  name: 'build_link',
  description:
    'Add UTM parameters to a landing page URL. Values are normalised (trimmed, accents dropped, lowercase, ' +
    'spaces to `_`, other punctuation removed) so every link of a campaign reports under one name. Fails on ' +
    'an invalid URL, an empty value, or a URL that already has different UTM values (unless replace_existing).',
  input: s.object({
    url: s.string({ minLength: 1, maxLength: 2000, description: 'Absolute http(s) landing page URL' }),
    source: value('Who sends the traffic, e.g. newsletter, google, facebook'),
    medium: value('The channel, e.g. email, cpc, social, paid_social'),
    campaign: value('The campaign name, e.g. spring_sale_2025'),
    term: s.optional(value('Paid search keyword')),
    content: s.optional(value('Which link or creative, to tell A/B variants apart')),
    id: s.optional(value('Campaign id in the ad platform')),
    lowercase: s.optional(s.boolean({ default: true, description: 'Lowercase every value' })),
    separator: s.optional(s.enum(['underscore', 'dash'], { default: 'underscore', description: 'What spaces become' })),
    replace_existing: s.optional(s.boolean({ default: false, description: 'Overwrite UTM values already in the URL' })),
  }),
  output: s.object({
    url: s.string(),
    params: s.object({}, { additionalProperties: { type: 'string' } }),
    warnings: s.array(s.string()),
  }),
  idempotent: true,
  requests: [], // pure: declared, so the host refuses any request it might make
  run: (input) => checked(() => buildLink(input)),
});

const auditTool = tool({
  name: 'audit_links',
  description:
    'Audit campaign links: report links that are invalid or miss utm_source/utm_medium/utm_campaign, ' +
    'duplicated, unknown, empty, capitalised or spaced UTM values, values that differ from the expected ones, ' +
    'and values that differ across links only by case or separators (which split a campaign in analytics).',
  input: s.object({
    links: s.array(s.string({ maxLength: 4000 }), { minItems: 1, maxItems: 200, description: 'The links to audit (at most 200 per call)' }),
    expected: s.optional(
      s.object(
        Object.fromEntries(PARAMS.map((name) => [name, s.optional(value(`Expected utm_${name}`))])),
        { description: 'Values every link should carry' },
      ),
    ),
  }),
  idempotent: true,
  requests: [],
  run: ({ links, expected }) => auditLinks(links, expected ?? {}),
});

const checkTool = tool({
  name: 'check_link',
  description:
    'Request a campaign link and follow its redirects (each hop through the host\'s egress gate): report ' +
    'every hop\'s status, the final URL and status, and whether the UTM parameters survived the redirects.',
  input: s.object({
    url: s.string({ minLength: 1, maxLength: 2000, description: 'The link to check' }),
    max_redirects: s.optional(s.integer({ minimum: 0, maximum: 10, default: 5, description: 'Redirects to follow' })),
    method: s.optional(s.enum(['HEAD', 'GET'], { default: 'HEAD', description: 'Some servers answer HEAD wrongly: use GET' })),
  }),
  effects: ['read'],
  idempotent: true,
  run({ url, max_redirects, method }, ctx) {
    let current = checked(() => parseUrl(url)).href;
    const hops = [];
    let stopped = null;
    for (;;) {
      let response;
      try {
        response = http.request(method, current, { ctx, timeoutMs: 10_000, maxResponseBytes: 1 << 20 });
      } catch (e) {
        // The first request failing is the tool's failure; a redirect target the host refuses
        // is a finding about the link.
        if (hops.length === 0) throw e;
        stopped = `redirect to ${current} failed: ${e.message}`;
        break;
      }
      const location = response.header('location');
      hops.push({ url: current, status: response.status, ...(location ? { location } : {}) });
      log.info('checked hop', { url: current, status: response.status });
      if (response.status < 300 || response.status >= 400 || !location) break;
      if (hops.length > max_redirects) {
        stopped = `more than ${max_redirects} redirects`;
        break;
      }
      let next;
      try {
        next = new URL(location, current);
      } catch {
        stopped = `invalid redirect location \`${location}\``;
        break;
      }
      if (next.protocol !== 'http:' && next.protocol !== 'https:') {
        stopped = `redirect to a non-web URL \`${next.href}\``;
        break;
      }
      current = next.href;
    }
    const last = hops[hops.length - 1];
    return {
      url,
      final_url: last.url,
      status: last.status,
      ok: stopped === null && last.status >= 200 && last.status < 300,
      redirects: hops.length - 1,
      hops,
      utm_preserved: utmPreserved(url, last.url),
      ...(stopped ? { stopped } : {}),
    };
  },
});

export default definePlugin({
  name: 'utm-links',
  version: '0.1.0',
  description: 'Build, audit and check UTM-tagged campaign links',
  // Campaign links point anywhere: the operator's grants decide which hosts are reachable.
  hosts: ['https://*:*', 'http://*:*'],
  tools: [buildTool, auditTool, checkTool],
});
