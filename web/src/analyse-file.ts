// "Analyse a recording" on the upload page: a WAV sent to POST
// /api/v1/analyze (upload progress shown; the analysis itself is one
// request, so it shows as busy), and the document it returns summarised as
// notes and onsets.

import { MAX_ANALYZE_BODY_BYTES } from '../../src/protocol/analysis-messages.ts';
import type { AnalysisDocument } from '../../wasm/dsp/offline.ts';
import { noteSegments } from './analyse/note-segments.ts';
import { byId, describeError, setText, show } from './dom.ts';
import { formatBytes } from './format.ts';
import { sendWithProgress } from './upload-request.ts';

/** Notes listed at most; a long file's summary says how many more there were. */
const MAX_LISTED_NOTES = 64;

function isDocument(d: unknown): d is AnalysisDocument {
  const x = d as Partial<AnalysisDocument> | null;
  return (
    typeof x === 'object' && x !== null && typeof x.hop_s === 'number' && Array.isArray(x.frames) && Array.isArray(x.onsets) &&
    x.frames.every((f) => typeof f?.t === 'number' && (f.f0 === null || typeof f.f0 === 'number'))
  );
}

export function setupAnalyseFile(): void {
  const form = byId<HTMLFormElement>('analyse-form');
  const input = byId<HTMLInputElement>('analyse-file');
  const submit = byId<HTMLButtonElement>('analyse-submit');
  const progressBox = byId('analyse-progress');
  const bar = byId<HTMLProgressElement>('analyse-bar');
  const percent = byId('analyse-percent');
  const stage = byId('analyse-stage');
  const error = byId('analyse-error');
  const result = byId('analyse-result');

  const showError = (text: string | null) => {
    setText(error, text ?? '');
    show(error, text !== null);
  };

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const file = input.files?.[0];
    if (!file) return showError('Choose a WAV file first.');
    if (file.size > MAX_ANALYZE_BODY_BYTES) return showError(`That file is ${formatBytes(file.size)}; the limit is ${formatBytes(MAX_ANALYZE_BODY_BYTES)}.`);
    showError(null);
    show(result, false);
    show(progressBox, true);
    submit.disabled = true;
    bar.value = 0;
    setText(percent, '0%');
    setText(stage, 'Uploading…');
    try {
      const doc = await sendWithProgress<unknown>('/api/v1/analyze', file, {
        headers: { 'content-type': 'audio/wav' },
        onProgress: (sent, total) => {
          const p = total > 0 ? Math.round((sent / total) * 100) : 0;
          bar.value = p;
          setText(percent, `${p}%`);
          // Once the body is sent the server is working: an indeterminate bar, honestly.
          if (sent >= total) {
            bar.removeAttribute('value');
            setText(stage, 'Analysing…');
          } else setText(stage, `Uploading ${formatBytes(sent)} of ${formatBytes(total)}`);
        },
      });
      if (!isDocument(doc)) throw new Error('the server sent something that is not an analysis');
      bar.value = 100;
      setText(percent, '100%');
      setText(stage, 'Done');
      render(doc);
    } catch (err) {
      show(progressBox, false);
      showError(`Analysis failed: ${describeError(err)}`);
    } finally {
      submit.disabled = false;
    }
  });

  function render(doc: AnalysisDocument): void {
    const length = doc.frames.length ? doc.frames[doc.frames.length - 1].t + doc.hop_s / 2 : 0;
    const notes = noteSegments(doc.frames, doc.hop_s);
    setText(byId('analyse-length'), `${length.toFixed(2)} s`);
    setText(byId('analyse-onsets'), String(doc.onsets.length));
    setText(byId('analyse-note-count'), String(notes.length));
    const list = byId('analyse-notes');
    list.replaceChildren();
    for (const n of notes.slice(0, MAX_LISTED_NOTES)) {
      const li = document.createElement('li');
      const strong = document.createElement('strong');
      strong.textContent = n.note;
      li.appendChild(strong);
      li.appendChild(document.createTextNode(` ${n.start.toFixed(2)}–${n.end.toFixed(2)} s`));
      list.appendChild(li);
    }
    if (notes.length > MAX_LISTED_NOTES) {
      const li = document.createElement('li');
      li.textContent = `and ${notes.length - MAX_LISTED_NOTES} more`;
      list.appendChild(li);
    }
    show(result, true);
  }
}
