// The upload page: sends a WAV to the catalog (an admin action), then follows
// the ingestion job's stream with the shared job watcher: a live progress bar
// and stage, the result when it completes, the error (with a retry when the
// job says retrying can help) when it fails. `/upload?job=ID` watches any job.

import type { IngestAccepted, JobEvent, JobStatus, TerminalEvent } from '../../src/protocol/index.ts';
import { JOB_ID_PATTERN } from '../../src/protocol/job-messages.ts';
import { JobNotFoundError, JobWatcher, type WatchMode } from '../../src/client/job-watcher.ts';
import { byId, describeError, setText, show } from './dom.ts';
import { formatBytes } from './format.ts';
import { apiJson } from './api.ts';
import { setupAnalyseFile } from './analyse-file.ts';
import { sendWithProgress } from './upload-request.ts';

const TOKEN_KEY = 'roomtone:admin-token';

const form = byId<HTMLFormElement>('upload-form');
const fileInput = byId<HTMLInputElement>('upload-file');
const titleInput = byId<HTMLInputElement>('upload-title');
const artistInput = byId<HTMLInputElement>('upload-artist');
const tokenInput = byId<HTMLInputElement>('upload-token');
const submit = byId<HTMLButtonElement>('upload-submit');
const uploadError = byId('upload-error');
const jobSection = byId('job');
const progress = byId<HTMLProgressElement>('job-progress');
const percent = byId('job-percent');
const stage = byId('job-stage');
const message = byId('job-message');
const modePill = byId('job-mode');
const result = byId('job-result');
const failed = byId('job-failed');
const retry = byId<HTMLButtonElement>('job-retry');

let watcher: JobWatcher | null = null;

const MODE_TEXT: Record<WatchMode, string> = {
  idle: 'Waiting',
  connecting: 'Connecting…',
  streaming: 'Live',
  polling: 'Polling (stream unavailable)',
  done: 'Finished',
  stopped: 'Stopped',
  failed: 'Lost',
};
const MODE_STATE: Record<WatchMode, string> = {
  idle: 'idle', connecting: 'connecting', streaming: 'open', polling: 'reconnecting', done: 'open', stopped: 'closed', failed: 'closed',
};

function setProgress(pct: number, label: string): void {
  const p = Math.max(0, Math.min(100, pct));
  progress.value = p;
  setText(percent, `${Math.round(p)}%`);
  setText(stage, label);
}

function resetJobView(title: string): void {
  show(jobSection, true);
  show(result, false);
  show(failed, false);
  setText(byId('job-title'), title);
  setText(message, '');
  setProgress(0, 'Starting…');
}

function showError(text: string | null): void {
  setText(uploadError, text ?? '');
  show(uploadError, text !== null);
}

/** A summary's simple fields as a definition list: whatever the job reports, without guessing its shape. */
function renderSummary(summary: unknown): void {
  const dl = byId('job-summary');
  dl.replaceChildren();
  if (!summary || typeof summary !== 'object') return;
  for (const [key, value] of Object.entries(summary as Record<string, unknown>)) {
    if (value === null || typeof value === 'object') continue;
    const div = document.createElement('div');
    const dt = document.createElement('dt');
    const dd = document.createElement('dd');
    dt.textContent = key.replace(/_/g, ' ');
    dd.textContent = String(value);
    div.appendChild(dt);
    div.appendChild(dd);
    dl.appendChild(div);
  }
}

function onEvent(e: JobEvent): void {
  if (e.type === 'progress') {
    setProgress(e.progress, e.stage);
    setText(message, e.message ?? '');
  }
}

function onTerminal(e: TerminalEvent, again: (() => void) | null): void {
  if (e.type === 'completed') {
    setProgress(100, 'Completed');
    setText(message, '');
    show(result, true);
    const link = byId<HTMLAnchorElement>('job-result-link');
    show(link, e.result_url !== null);
    if (e.result_url) link.href = e.result_url;
    renderSummary(e.summary);
    return;
  }
  modePill.dataset.state = 'closed';
  setText(modePill, 'Failed');
  show(failed, true);
  setText(byId('job-error'), `Failed${e.stage ? ` during ${e.stage}` : ''}: ${e.message}`);
  // Only offer a retry when the job says it can help and there is something to send again.
  show(retry, e.retryable && again !== null);
  retry.onclick = again;
  setText(
    byId('job-failed-hint'),
    e.retryable ? (again ? 'The server says trying again may work.' : 'The server says trying again may work: start the job again.') : 'Trying again will not help: check the input.',
  );
}

function watch(statusUrl: string, streamUrl: string | undefined, again: (() => void) | null): void {
  watcher?.stop();
  const w = new JobWatcher({ statusUrl, streamUrl });
  watcher = w;
  w.on('event', onEvent);
  w.on('mode', (m) => {
    modePill.dataset.state = MODE_STATE[m];
    setText(modePill, MODE_TEXT[m]);
  });
  w.on('status', (s) => setProgress(s.progress, s.stage ?? s.state));
  w.start();
  // The title is in the status document; the stream carries only events.
  apiJson<JobStatus>(statusUrl).then(
    (s) => setText(byId('job-title'), s.title ?? s.job_id),
    () => undefined,
  );
  w.done.then(
    (e) => onTerminal(e, again),
    (err: unknown) => {
      if (w !== watcher) return;
      show(failed, true);
      setText(byId('job-error'), err instanceof JobNotFoundError ? 'No such job: it may have expired.' : `Lost the job: ${describeError(err)}`);
      show(retry, false);
    },
  );
}

async function upload(file: File, title: string, artist: string, token: string): Promise<void> {
  showError(null);
  submit.disabled = true;
  resetJobView(`${title}${artist ? ` · ${artist}` : ''}`);
  setText(modePill, 'Uploading');
  modePill.dataset.state = 'connecting';
  const query = new URLSearchParams({ title });
  if (artist) query.set('artist', artist);
  try {
    const accepted = await sendWithProgress<IngestAccepted>(`/api/v1/catalog/tracks?${query}`, file, {
      headers: { authorization: `Bearer ${token}`, 'content-type': 'audio/wav' },
      onProgress: (sent, total) => setProgress(0, `Uploading ${formatBytes(sent)} of ${formatBytes(total)}`),
    });
    history.replaceState(null, '', `/upload?job=${accepted.job_id}`);
    watch(accepted.status_url, accepted.stream_url, () => void upload(file, title, artist, token));
  } catch (e) {
    show(jobSection, false);
    showError(`Upload failed: ${describeError(e)}`);
    if ((e as { status?: number }).status === 401) {
      sessionStorage.removeItem(TOKEN_KEY);
      tokenInput.focus();
    }
  } finally {
    submit.disabled = false;
  }
}

fileInput.addEventListener('change', () => {
  const f = fileInput.files?.[0];
  if (f && !titleInput.value) titleInput.value = f.name.replace(/\.[^.]+$/, '').replace(/[_-]+/g, ' ').trim();
});

form.addEventListener('submit', (e) => {
  e.preventDefault();
  const file = fileInput.files?.[0];
  if (!file) return showError('Choose a WAV file first.');
  const title = titleInput.value.trim();
  if (!title) return showError('Give the track a title.');
  const token = tokenInput.value.trim();
  if (!token) return showError('The admin token is needed to add tracks.');
  try {
    sessionStorage.setItem(TOKEN_KEY, token);
  } catch {
    // storage disabled: the token stays in the field
  }
  void upload(file, title, artistInput.value.trim(), token);
});

try {
  tokenInput.value = sessionStorage.getItem(TOKEN_KEY) ?? '';
} catch {
  // storage disabled
}

setupAnalyseFile();

const jobParam = new URLSearchParams(location.search).get('job');
if (jobParam && JOB_ID_PATTERN.test(jobParam)) {
  resetJobView(jobParam);
  watch(new URL(`/api/v1/jobs/${jobParam}`, location.href).toString(), undefined, null);
}
