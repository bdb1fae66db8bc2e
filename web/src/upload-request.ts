// A POST whose upload progress can be shown: fetch() reports none, so this
// one request uses XMLHttpRequest. Error bodies are the service's
// {error:{code,message}}, as in api.ts.

import { ApiError } from './api.ts';

export function sendWithProgress<T>(
  url: string,
  body: Blob,
  opts: { headers: Record<string, string>; onProgress: (sent: number, total: number) => void },
): Promise<T> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', url);
    for (const [k, v] of Object.entries(opts.headers)) xhr.setRequestHeader(k, v);
    xhr.upload.onprogress = (e) => opts.onProgress(e.loaded, e.lengthComputable ? e.total : body.size);
    xhr.onerror = () => reject(new ApiError(0, 'network', 'cannot reach the server; check the connection and try again'));
    xhr.onload = () => {
      let parsed: unknown = null;
      try {
        parsed = JSON.parse(xhr.responseText);
      } catch {
        // not JSON
      }
      if (xhr.status >= 200 && xhr.status < 300) return resolve(parsed as T);
      const err = (parsed as { error?: { code?: string; message?: string } } | null)?.error;
      reject(new ApiError(xhr.status, err?.code ?? `http_${xhr.status}`, err?.message ?? `${xhr.status} ${xhr.statusText}`));
    };
    xhr.send(body);
  });
}
