// HTTP helpers for CLI commands: every failure becomes one readable line.
import { CliError } from './cli-error.ts';

export function baseUrl(raw: string | undefined): URL {
  const value = raw ?? process.env.ROOMTONE_URL;
  if (!value) throw new CliError('no server URL: pass --url or set ROOMTONE_URL (e.g. http://127.0.0.1:8787)', 2);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new CliError(`not a URL: ${value}`, 2);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new CliError(`the URL must start with http:// or https://, got ${value}`, 2);
  return url;
}

export async function requestJson<T>(url: URL | string, init: RequestInit = {}): Promise<T> {
  let res: Response;
  try {
    res = await fetch(url, init);
  } catch (e) {
    const cause = (e as { cause?: { code?: string } }).cause?.code;
    throw new CliError(`cannot reach ${new URL(url).origin}${cause ? ` (${cause})` : ''}: is the server running?`);
  }
  const text = await res.text();
  let body: unknown = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    // not JSON: reported below
  }
  if (!res.ok) {
    const err = (body as { error?: { code?: string; message?: string } } | null)?.error;
    throw new CliError(err ? `${err.message} (${err.code}, HTTP ${res.status})` : `HTTP ${res.status} from ${new URL(url).pathname}`);
  }
  if (body === null) throw new CliError(`the server answered ${new URL(url).pathname} with something that is not JSON`);
  return body as T;
}
