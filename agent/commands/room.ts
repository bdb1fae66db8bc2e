import type { Command } from 'commander';
import { baseUrl, requestJson } from '../http.ts';

interface CreatedRoom {
  code: string;
  control_token: string;
  ws_url: string;
  page_url: string;
}

export async function createRoom(url: URL, body: Record<string, unknown> = {}): Promise<CreatedRoom> {
  return requestJson<CreatedRoom>(new URL('/api/v1/rooms', url), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

export function registerRoom(program: Command): void {
  const room = program.command('room').description('create and inspect rooms');
  room
    .command('create')
    .description('create a room; prints its code, control token (shown once) and page link')
    .option('--url <url>', 'server URL (or ROOMTONE_URL)')
    .option('--bpm <bpm>', 'initial tempo', Number)
    .option('--sample-rate <hz>', 'sample rate of the transport', Number)
    .option('--json', 'print JSON')
    .action(async (opts: { url?: string; bpm?: number; sampleRate?: number; json?: boolean }) => {
      const body: Record<string, unknown> = {};
      if (opts.bpm !== undefined) body.bpm = opts.bpm;
      if (opts.sampleRate !== undefined) body.sample_rate = opts.sampleRate;
      const created = await createRoom(baseUrl(opts.url), body);
      if (opts.json) {
        process.stdout.write(JSON.stringify(created) + '\n');
        return;
      }
      process.stdout.write(
        `room code      ${created.code}\n` +
          `page           ${created.page_url}\n` +
          `control token  ${created.control_token}\n` +
          `               (shown once: keep it to control the transport or attach an agent)\n`,
      );
    });
}
