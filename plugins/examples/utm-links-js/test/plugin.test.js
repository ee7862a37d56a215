// The tools as the host calls them (needs .tollgate/sdk, written by `tollgate plugin build`).
import { test } from 'node:test';
import assert from 'node:assert/strict';

import plugin from '../src/plugin.js';

test('the manifest declares three tools; only check_link reads', () => {
  const manifest = plugin.manifest();
  assert.deepEqual(manifest.tools.map((t) => [t.name, t.effects]), [
    ['build_link', []], ['audit_links', []], ['check_link', ['read']],
  ]);
});

test('build_link applies schema defaults and maps link errors to invalid-input', () => {
  const out = plugin.call('build_link', { url: 'https://a.example/', source: 'X', medium: 'email', campaign: 'Y Z' });
  assert.equal(out.url, 'https://a.example/?utm_source=x&utm_medium=email&utm_campaign=y_z');
  assert.throws(
    () => plugin.call('build_link', { url: 'nope', source: 'x', medium: 'email', campaign: 'y' }),
    (e) => e.kind === 'invalid-input' && e.message.startsWith('url:'),
  );
});

test('audit_links works without expectations', () => {
  const out = plugin.call('audit_links', { links: ['https://a.example/?utm_source=a'] });
  assert.equal(out.clean, 0);
  assert.deepEqual(out.links[0].problems, ['missing utm_medium', 'missing utm_campaign']);
});
