import { test } from 'node:test';
import assert from 'node:assert/strict';

import { auditLinks, buildLink, linkProblems, normaliseValue, utmPreserved } from '../src/utm.js';

test('normaliseValue trims, drops accents, lowercases and joins words', () => {
  assert.deepEqual(normaliseValue('  Été Sale  2025 '), { value: 'ete_sale_2025', removed: [] });
  assert.deepEqual(normaliseValue('Spring Sale!', { separator: 'dash' }), { value: 'spring-sale', removed: ['!'] });
  assert.equal(normaliseValue('A__B--C', { lowercase: false }).value, 'A_B-C');
  assert.equal(normaliseValue('***').value, '');
  assert.throws(() => normaliseValue('x', { separator: 'dot' }), /separator/);
});

test('buildLink keeps other parameters and the fragment, and orders UTM parameters', () => {
  const built = buildLink({
    url: 'https://shop.example.com/sale?ref=nav&color=red%20blue#top',
    source: 'Newsletter',
    medium: 'Email',
    campaign: 'Spring Sale 2025',
    content: 'hero button',
  });
  assert.equal(
    built.url,
    'https://shop.example.com/sale?ref=nav&color=red%20blue&utm_source=newsletter&utm_medium=email' +
      '&utm_campaign=spring_sale_2025&utm_content=hero_button#top',
  );
  assert.deepEqual(built.warnings, []);
});

test('buildLink refuses bad URLs and values, and conflicting existing tags unless told', () => {
  const base = { source: 'google', medium: 'cpc', campaign: 'x' };
  assert.throws(() => buildLink({ ...base, url: 'shop.example.com' }), /not an absolute URL/);
  assert.throws(() => buildLink({ ...base, url: 'ftp://shop.example.com/' }), /http or https/);
  assert.throws(() => buildLink({ ...base, url: 'https://intranet/' }), /not a public host name/);
  assert.throws(() => buildLink({ ...base, url: 'https://a.example/', campaign: '!!!' }), { field: 'campaign' });
  const tagged = 'https://a.example/?utm_source=bing&utm_medium=cpc&utm_campaign=x';
  assert.throws(() => buildLink({ ...base, url: tagged }), /already has utm_source=bing/);
  const replaced = buildLink({ ...base, url: tagged, replace_existing: true });
  assert.equal(replaced.url, 'https://a.example/?utm_source=google&utm_medium=cpc&utm_campaign=x');
  assert.deepEqual(replaced.warnings, ['replaced utm_source=bing with google']);
});

test('buildLink warns about unusual mediums and removed characters', () => {
  const built = buildLink({ url: 'https://a.example/', source: 'fb', medium: 'Facebook Ads', campaign: 'q3/launch' });
  assert.equal(built.params.utm_campaign, 'q3launch');
  assert.ok(built.warnings.some((w) => w.startsWith('campaign: removed `/`')), built.warnings.join('; '));
  assert.ok(built.warnings.some((w) => w.includes('not a standard medium')), built.warnings.join('; '));
});

test('linkProblems reports missing, duplicated, capitalised and unexpected values', () => {
  const problems = linkProblems(
    'https://a.example/?utm_source=News%20Letter&utm_source=x&utm_Medium=email&utm_campaign=Spring&utm_foo=1',
    { campaign: 'summer' },
  );
  for (const part of ['`utm_source` appears 2 times', '`utm_Medium` is not lowercase', 'missing utm_medium',
    'contains spaces', 'has capitals', 'unknown UTM parameter `utm_foo`', 'utm_campaign is `Spring`, expected `summer`']) {
    assert.ok(problems.some((p) => p.includes(part)), `${problems.join('; ')} lacks ${part}`);
  }
  assert.deepEqual(linkProblems('https://a.example/?utm_source=a&utm_medium=email&utm_campaign=c'), []);
  assert.deepEqual(linkProblems('not a url'), ['link: `not a url` contains whitespace; encode it or remove it']);
});

test('auditLinks groups values that differ only in case or separators', () => {
  const report = auditLinks([
    'https://a.example/?utm_source=newsletter&utm_medium=email&utm_campaign=spring_sale',
    'https://a.example/b?utm_source=newsletter&utm_medium=email&utm_campaign=Spring-Sale',
    'https://a.example/c?utm_source=newsletter&utm_medium=email',
  ]);
  assert.equal(report.total, 3);
  assert.equal(report.clean, 1);
  assert.deepEqual(report.links.map((l) => l.index), [1, 2]);
  assert.deepEqual(report.inconsistencies, [
    { param: 'utm_campaign', canonical: 'spring_sale', variants: ['Spring-Sale', 'spring_sale'] },
  ]);
  assert.deepEqual(report.campaigns, { spring_sale: 1, 'Spring-Sale': 1 });
});

test('utmPreserved compares the UTM values of two links', () => {
  const original = 'https://a.example/?utm_source=x&utm_medium=email&utm_campaign=c';
  assert.equal(utmPreserved(original, 'https://b.example/landing?utm_campaign=c&utm_medium=email&utm_source=x'), true);
  assert.equal(utmPreserved(original, 'https://b.example/landing'), false);
});
