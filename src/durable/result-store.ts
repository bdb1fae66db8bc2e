import { DurableObject } from 'cloudflare:workers';
import type { Env } from '../worker/env.ts';

/**
 * One finished result (an offline analysis document) for its job's
 * `result_url`: one object per result, so results never share a size limit,
 * and each is deleted by its own alarm when its retention ends.
 */
export class ResultStore extends DurableObject<Env> {
  async put(json: string, retentionS: number): Promise<void> {
    await this.ctx.storage.put('result', json);
    await this.ctx.storage.setAlarm(Date.now() + retentionS * 1000);
  }

  async get(): Promise<string | null> {
    return (await this.ctx.storage.get<string>('result')) ?? null;
  }

  async alarm(): Promise<void> {
    await this.ctx.storage.deleteAll();
  }
}
