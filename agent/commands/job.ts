import type { Command } from 'commander';
import { SingleBar, Presets } from 'cli-progress';
import { JobNotFoundError, JobWatcher } from '../../src/client/job-watcher.ts';
import { JOB_ID_PATTERN, type JobEvent, type TerminalEvent } from '../../src/protocol/index.ts';
import { baseUrl } from '../http.ts';
import { CliError } from '../cli-error.ts';

interface JobWatchOptions {
  url?: string;
  json?: boolean;
  after?: number;
}

/** Exit status of `job watch`: 0 completed, 1 failed, 3 no such job (2 is a usage error). */
export const JOB_EXIT = { completed: 0, failed: 1, notFound: 3 } as const;

function statusUrlOf(idOrUrl: string, url: string | undefined): string {
  // A status URL pasted as it is (the one job creation returned) needs no --url.
  if (/^https?:\/\//i.test(idOrUrl)) return idOrUrl;
  if (!JOB_ID_PATTERN.test(idOrUrl)) throw new CliError(`not a job id: ${idOrUrl} (ids look like job_ and 24 letters, digits, - or _)`, 2);
  return new URL(`/api/v1/jobs/${idOrUrl}`, baseUrl(url)).toString();
}

function describeEnd(e: TerminalEvent): string {
  if (e.type === 'completed') return `completed${e.result_url ? `: ${e.result_url}` : ''}${e.summary !== null && e.summary !== undefined ? `\nsummary: ${JSON.stringify(e.summary)}` : ''}`;
  return `failed${e.stage ? ` in ${e.stage}` : ''}: ${e.message}${e.retryable ? ' (retryable)' : ''}`;
}

export function registerJob(program: Command): void {
  const job = program.command('job').description('follow long jobs (catalog ingestion, analysis of long files)');
  job
    .command('watch')
    .description('follow a job until it ends: a progress bar, or one JSON line per event with --json; exits 0 when it completes, 1 when it fails, 3 when there is no such job')
    .argument('<job>', 'job id, or its status URL')
    .option('--url <url>', 'server URL (or ROOMTONE_URL)')
    .option('--json', 'one JSON line per event (progress, completed, error), exactly once each and in order')
    .option('--after <seq>', 'only events after this sequence number', (v) => Number(v))
    .action(async (idOrUrl: string, opts: JobWatchOptions) => {
      if (opts.after !== undefined && (!Number.isSafeInteger(opts.after) || opts.after < 0)) throw new CliError('--after must be an integer ≥ 0', 2);
      const statusUrl = statusUrlOf(idOrUrl, opts.url);
      const watcher = new JobWatcher({ statusUrl, after: opts.after });
      const interactive = !opts.json && process.stderr.isTTY === true;
      const bar = interactive
        ? new SingleBar({ format: ' {bar} {percentage}% | {stage} {message}', hideCursor: true, clearOnComplete: false, stream: process.stderr }, Presets.shades_classic)
        : null;
      bar?.start(100, 0, { stage: 'waiting', message: '' });
      let lastLine = '';
      watcher.on('event', (e: JobEvent) => {
        if (opts.json) {
          process.stdout.write(JSON.stringify(e) + '\n');
          return;
        }
        if (e.type !== 'progress') {
          if (e.type === 'completed') bar?.update(100);
          return;
        }
        if (bar) {
          bar.update(e.progress, { stage: e.stage, message: e.message ? `- ${e.message}` : '' });
          return;
        }
        // Not a terminal: one line per change of stage or whole percent, not per event.
        const line = `${Math.floor(e.progress)}% ${e.stage}${e.message ? ` - ${e.message}` : ''}`;
        if (line !== lastLine) process.stderr.write(line + '\n');
        lastLine = line;
      });
      watcher.on('mode', (m) => {
        if (!interactive && !opts.json && (m === 'polling' || m === 'connecting')) process.stderr.write(`[${m}]\n`);
      });
      let end: TerminalEvent;
      try {
        end = await watcher.start().done;
      } catch (e) {
        bar?.stop();
        if (e instanceof JobNotFoundError) throw new CliError(`no such job at ${new URL(statusUrl).origin} (it may have expired)`, JOB_EXIT.notFound);
        throw e;
      }
      bar?.stop();
      if (!opts.json) process.stdout.write(describeEnd(end) + '\n');
      if (end.type === 'error') throw new CliError(`the job failed${end.retryable ? ' (retryable)' : ''}`, JOB_EXIT.failed);
      // The job is over; do not wait for the socket's closing handshake to finish too.
      process.exit(JOB_EXIT.completed);
    });
}
