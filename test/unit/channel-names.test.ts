// Delivery names no channel: it knows channels through their interface (lib/channels/channel.ts)
// and the registry (lib/channels/registry.ts), so a new channel is its own file and one registry
// line. A registered channel's id as a string literal ('email', "inapp", `email`) in one of the
// modules below, or an import of one channel's implementation, fails this test. (Comments may
// mention channels; a literal is what a branch on a channel's name needs.)
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { registeredChannels } from '../../lib/channels/registry.ts';

/** The channel-blind modules: delivery and what it is made of, and the fan-out's inline split. */
const CHANNEL_BLIND_MODULES = [
  'lib/notifications/deliver.ts',
  'lib/notifications/fanout.ts',
  'lib/notifications/lease.ts',
  'lib/notifications/render.ts',
  'lib/channels/channel.ts',
  'lib/channels/inline.ts',
];

const ids = registeredChannels.map((c) => c.id);
const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The lines that hold a channel id as a quoted string literal, or import a channel's own module. */
function channelNamesIn(text: string): string[] {
  const literal = new RegExp(`(['"\`])(?:${ids.map(escape).join('|')})\\1`, 'g');
  const implementation =
    /from\s+['"][^'"]*\/channels\/(?!channel\.ts|registry\.ts|delivery-error\.ts|inline\.ts)[^'"]+['"]/g;
  const found: string[] = [];
  text.split('\n').forEach((line, i) => {
    for (const match of line.matchAll(literal)) found.push(`line ${i + 1}: ${match[0]}`);
    for (const match of line.matchAll(implementation)) found.push(`line ${i + 1}: ${match[0]}`);
  });
  return found;
}

const root = new URL('../../', import.meta.url);

describe('delivery names no channel', () => {
  it('has channels to look for, and finds a name or an implementation import where one is', () => {
    expect(ids).toEqual(expect.arrayContaining(['email', 'inapp']));
    for (const text of [
      "if (n.channel === 'email') send();",
      'const inapp = claimed.filter((n) => n.channel === "inapp");',
      'switch (channel) { case `email`: }',
      "import { emailChannel } from '../channels/email-channel.ts';",
      "import { createEmailSender } from '../channels/email.ts';",
    ])
      expect(channelNamesIn(text), text).toHaveLength(1);
    for (const text of [
      "import { channels } from '../channels/registry.ts';",
      "import type { Channel } from '../channels/channel.ts';",
      'const reason = `channel "${channel.id}" threw`;',
      "const emailed = 'emails';",
      '// in-app messages are written in the transaction that marks them sent, as email is not',
    ])
      expect(channelNamesIn(text), text).toEqual([]);
  });

  it.each(CHANNEL_BLIND_MODULES)('%s', async (file) => {
    const text = await readFile(new URL(file, root), 'utf8');
    expect(
      channelNamesIn(text),
      `${file} names a channel; what differs between channels belongs in their implementation (lib/channels/)`,
    ).toEqual([]);
  });
});
