// UTM link logic: normalising parameter values, building tagged links, auditing lists of
// links. Pure functions (no SDK, no capabilities), tested with plain `node --test`.
//
// Errors are thrown as `UtmError` with the offending field; the plugin turns them into
// `invalid-input` for the model.

/** The UTM parameters, in the order a built link carries them. */
export const PARAMS = ['source', 'medium', 'campaign', 'term', 'content', 'id'];
/** Parameters every tagged link needs for analytics to attribute it. */
export const REQUIRED = ['source', 'medium', 'campaign'];
/** Longest value accepted after normalisation. */
export const MAX_VALUE_LENGTH = 100;
/** Longest link a build may produce (older browsers and many email clients cut beyond). */
export const MAX_URL_LENGTH = 2048;
/** Mediums the common analytics channel groupings recognise. Others get a warning. */
export const KNOWN_MEDIUMS = [
  'affiliate', 'audio', 'banner', 'cpa', 'cpc', 'cpm', 'cpv', 'display', 'email', 'mobile', 'newsletter',
  'organic', 'paid_social', 'paidsearch', 'ppc', 'push', 'qr', 'referral', 'retargeting', 'sms', 'social', 'video',
];

export class UtmError extends Error {
  constructor(field, message) {
    super(`${field}: ${message}`);
    this.name = 'UtmError';
    this.field = field;
  }
}

const SEPARATORS = { underscore: '_', dash: '-' };

// StarlingMonkey (the default engine) has no String.prototype.normalize, so accents are folded
// with a table (Latin-1 and Latin Extended-A) rather than NFKD.
const FOLDS = {
  a: 'àáâãäåāăą', c: 'çćĉċč', d: 'ďđð', e: 'èéêëēĕėęě', g: 'ĝğġģ', h: 'ĥħ', i: 'ìíîïĩīĭįı', j: 'ĵ', k: 'ķ',
  l: 'ĺļľŀł', n: 'ñńņňŉ', o: 'òóôõöøōŏő', r: 'ŕŗř', s: 'śŝşš', t: 'ţťŧ', u: 'ùúûüũūŭůűų', w: 'ŵ', y: 'ýÿŷ',
  z: 'źżž', A: 'ÀÁÂÃÄÅĀĂĄ', C: 'ÇĆĈĊČ', D: 'ĎĐÐ', E: 'ÈÉÊËĒĔĖĘĚ', G: 'ĜĞĠĢ', H: 'ĤĦ', I: 'ÌÍÎÏĨĪĬĮİ', J: 'Ĵ',
  K: 'Ķ', L: 'ĹĻĽĿŁ', N: 'ÑŃŅŇ', O: 'ÒÓÔÕÖØŌŎŐ', R: 'ŔŖŘ', S: 'ŚŜŞŠ', T: 'ŢŤŦ', U: 'ÙÚÛÜŨŪŬŮŰŲ', W: 'Ŵ',
  Y: 'ÝŶŸ', Z: 'ŹŻŽ', ss: 'ß', ae: 'æ', AE: 'Æ', oe: 'œ', OE: 'Œ', th: 'þ', TH: 'Þ',
};
const FOLD = new Map(Object.entries(FOLDS).flatMap(([base, accented]) => [...accented].map((c) => [c, base])));

/** `text` with accented Latin letters replaced by their base letters (`Crème` → `Creme`). */
export function foldAccents(text) {
  return [...text].map((c) => FOLD.get(c) ?? c).join('');
}

/**
 * Normalises one UTM value. Rules, in order: trim; drop accents; lowercase (unless
 * `lowercase` is false); whitespace runs become the separator (`_` or `-`); characters other
 * than letters, digits, `_`, `-`, `.` and `+` are removed; runs of separators collapse; leading
 * and trailing separators go. Returns `{value, removed}` (`removed`: the characters dropped).
 */
export function normaliseValue(raw, { lowercase = true, separator = 'underscore' } = {}) {
  const sep = SEPARATORS[separator];
  if (sep === undefined) throw new UtmError('separator', `must be "underscore" or "dash", not "${separator}"`);
  let value = foldAccents(String(raw).trim());
  if (lowercase) value = value.toLowerCase();
  value = value.replace(/\s+/g, sep);
  const removed = [...new Set(value.match(/[^A-Za-z0-9_.+-]/g) ?? [])];
  value = value
    .replace(/[^A-Za-z0-9_.+-]/g, '')
    .replace(/[_-]{2,}/g, (run) => (run.includes(sep) ? sep : run[0]))
    .replace(/^[_.+-]+|[_.+-]+$/g, '');
  return { value, removed };
}

/** Parses an absolute http(s) URL or throws UtmError naming `field`. */
export function parseUrl(text, field = 'url') {
  if (typeof text !== 'string' || text.trim() === '') throw new UtmError(field, 'is empty');
  if (/\s/.test(text.trim())) throw new UtmError(field, `\`${text}\` contains whitespace; encode it or remove it`);
  let url;
  try {
    url = new URL(text.trim());
  } catch {
    throw new UtmError(field, `\`${text}\` is not an absolute URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UtmError(field, `must be an http or https URL, not ${url.protocol}`);
  }
  const dotted = url.hostname.includes('.') || url.hostname.startsWith('[') || url.hostname === 'localhost';
  if (!dotted) {
    throw new UtmError(field, `\`${url.hostname}\` is not a public host name`);
  }
  if (url.username || url.password) throw new UtmError(field, 'must not carry a user name or password');
  return url;
}

/** Splits a raw query (`?a=1&b=2`) into `[rawPair, decodedKey, decodedValue]` triples. */
function queryPairs(search) {
  const query = search.startsWith('?') ? search.slice(1) : search;
  if (query === '') return [];
  return query.split('&').filter((pair) => pair !== '').map((pair) => {
    const [key, ...rest] = pair.split('=');
    return [pair, decodeQueryPart(key), decodeQueryPart(rest.join('='))];
  });
}

function decodeQueryPart(part) {
  try {
    return decodeURIComponent(part.replace(/\+/g, ' '));
  } catch {
    return part;
  }
}

/**
 * Builds a tagged link. `input`: `{url, source, medium, campaign, term?, content?, id?,
 * lowercase = true, separator = 'underscore', replace_existing = false}`.
 * Returns `{url, params, warnings}`. Existing non-UTM query parameters and the fragment are
 * kept as they were; UTM parameters go after them, in PARAMS order.
 */
export function buildLink(input) {
  const url = parseUrl(input.url);
  const options = { lowercase: input.lowercase !== false, separator: input.separator ?? 'underscore' };
  const warnings = [];
  const params = {};
  for (const name of PARAMS) {
    const raw = input[name];
    if (raw === undefined || raw === null) {
      if (REQUIRED.includes(name)) throw new UtmError(name, 'is required');
      continue;
    }
    const { value, removed } = normaliseValue(raw, options);
    if (value === '') throw new UtmError(name, `\`${raw}\` has nothing left after normalisation`);
    if (value.length > MAX_VALUE_LENGTH) {
      throw new UtmError(name, `is ${value.length} characters after normalisation (at most ${MAX_VALUE_LENGTH})`);
    }
    if (removed.length > 0) warnings.push(`${name}: removed ${removed.map((c) => `\`${c}\``).join(' ')}`);
    params[`utm_${name}`] = value;
  }
  if (!KNOWN_MEDIUMS.includes(params.utm_medium.toLowerCase())) {
    warnings.push(`medium: \`${params.utm_medium}\` is not a standard medium; analytics may file it under "(other)"`);
  }
  if (params.utm_source.toLowerCase() === params.utm_medium.toLowerCase()) {
    warnings.push('source and medium are the same; source names the sender (newsletter, google), medium the channel');
  }

  const kept = [];
  for (const [pair, key, value] of queryPairs(url.search)) {
    if (!key.toLowerCase().startsWith('utm_')) {
      kept.push(pair);
      continue;
    }
    const ours = params[key.toLowerCase()];
    if (ours === undefined) {
      warnings.push(`kept existing \`${key}=${value}\``);
      kept.push(pair);
    } else if (ours !== value) {
      if (input.replace_existing !== true) {
        throw new UtmError('url', `already has ${key}=${value}; set replace_existing to overwrite it with ${ours}`);
      }
      warnings.push(`replaced ${key}=${value} with ${ours}`);
    }
  }
  const tags = Object.entries(params).map(([k, v]) => `${k}=${encodeURIComponent(v)}`);
  const query = [...kept, ...tags].join('&');
  const built = `${url.origin}${url.pathname}?${query}${url.hash}`;
  if (built.length > MAX_URL_LENGTH) {
    throw new UtmError('url', `the tagged link is ${built.length} characters (at most ${MAX_URL_LENGTH})`);
  }
  return { url: built, params, warnings };
}

/** The UTM parameters of a parsed URL: `{name: [values...]}` (decoded, in order, repeats kept). */
export function utmParams(url) {
  const found = {};
  for (const [, key, value] of queryPairs(url.search)) {
    if (key.toLowerCase().startsWith('utm_')) (found[key] ??= []).push(value);
  }
  return found;
}

/** The problems of one link, as sentences; `expected` maps names (`source`...) to values. */
export function linkProblems(text, expected = {}) {
  let url;
  try {
    url = parseUrl(text, 'link');
  } catch (e) {
    return [e.message];
  }
  return problemsOf(url, utmParams(url), expected);
}

function problemsOf(url, found, expected) {
  const problems = [];
  for (const key of Object.keys(found)) {
    const name = key.slice(4);
    if (key !== key.toLowerCase()) problems.push(`\`${key}\` is not lowercase; analytics reads only \`${key.toLowerCase()}\``);
    else if (!PARAMS.includes(name)) problems.push(`unknown UTM parameter \`${key}\``);
    if (found[key].length > 1) problems.push(`\`${key}\` appears ${found[key].length} times`);
  }
  for (const name of REQUIRED) {
    if (!found[`utm_${name}`]) problems.push(`missing utm_${name}`);
  }
  for (const name of PARAMS) {
    const values = found[`utm_${name}`];
    if (!values) continue;
    const value = values[0];
    if (value.trim() === '') {
      problems.push(`utm_${name} is empty`);
      continue;
    }
    if (/\s/.test(value)) problems.push(`utm_${name} \`${value}\` contains spaces`);
    if (value !== value.toLowerCase()) {
      problems.push(`utm_${name} \`${value}\` has capitals; analytics counts \`${value}\` and \`${value.toLowerCase()}\` apart`);
    }
    const want = expected[name];
    if (want !== undefined && want !== null && normaliseValue(want).value !== normaliseValue(value).value) {
      problems.push(`utm_${name} is \`${value}\`, expected \`${want}\``);
    }
  }
  if (/(^|[#&?])utm_/i.test(url.hash)) problems.push('UTM parameters after `#` are ignored by analytics');
  return problems;
}

/**
 * Audits a list of links: per-link problems, plus values that differ across links only in
 * case, accents or separators (`Spring-Sale` vs `spring_sale`), which split one campaign's
 * numbers in two. Returns `{total, clean, links, inconsistencies, campaigns}`.
 */
export function auditLinks(links, expected = {}) {
  const flagged = [];
  const variants = {}; // "utm_campaign" → canonical → Set of raw values
  const campaigns = {};
  links.forEach((text, index) => {
    let url;
    try {
      url = parseUrl(text, 'link');
    } catch (e) {
      flagged.push({ index, url: text, problems: [e.message] });
      return;
    }
    const found = utmParams(url);
    const problems = problemsOf(url, found, expected);
    if (problems.length > 0) flagged.push({ index, url: text, problems });
    for (const name of PARAMS) {
      const value = found[`utm_${name}`]?.[0];
      if (value === undefined || value.trim() === '') continue;
      const canonical = normaliseValue(value, { separator: 'underscore' }).value.replace(/-/g, '_');
      ((variants[`utm_${name}`] ??= {})[canonical] ??= new Set()).add(value);
      if (name === 'campaign') campaigns[value] = (campaigns[value] ?? 0) + 1;
    }
  });
  const inconsistencies = [];
  for (const [param, groups] of Object.entries(variants)) {
    for (const [canonical, values] of Object.entries(groups)) {
      if (values.size > 1) inconsistencies.push({ param, canonical, variants: [...values].sort() });
    }
  }
  return { total: links.length, clean: links.length - flagged.length, links: flagged, inconsistencies, campaigns };
}

/** Whether every UTM parameter of `original` survives, with the same value, in `final`. */
export function utmPreserved(original, final) {
  const before = utmParams(parseUrl(original));
  const after = utmParams(parseUrl(final));
  return Object.entries(before).every(([key, values]) => after[key]?.[0] === values[0]);
}
