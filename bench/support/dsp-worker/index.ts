// See wrangler.toml: the DSP pipeline alone inside workerd, for bench/dsp.ts.
import { loadKissFFT } from '../../../wasm/kissfft-workerd.ts';
import { analyzeSamples } from '../../../wasm/dsp/offline.ts';
import { analysisCounts, KERNELS, runKernel, type KernelName } from '../dsp-kernels.ts';

/** The decoded files, kept in the isolate between requests (one local isolate serves them all). */
const files: Array<{ samples: Float32Array; rate: number }> = [];

export default {
  async fetch(req: Request): Promise<Response> {
    const url = new URL(req.url);
    if (url.pathname === '/api/v1/health') return Response.json({ ok: true });
    const put = /^\/samples\/(\d+)$/.exec(url.pathname);
    if (put && req.method === 'PUT') {
      const rate = Number(url.searchParams.get('rate'));
      files[Number(put[1])] = { samples: new Float32Array(await req.arrayBuffer()), rate };
      return Response.json({ ok: true, files: files.length });
    }
    if (url.pathname === '/run' && req.method === 'POST') {
      // Exactly what the Node row runs: analyzeSamples() on every file. Only
      // counts go back, so the response costs nothing next to the analysis.
      const kiss = await loadKissFFT();
      const docs = files.map((f) => analyzeSamples(kiss, f.samples, f.rate));
      return Response.json({ files: files.length, ...analysisCounts(docs) });
    }
    if (url.pathname === '/kernel' && req.method === 'POST') {
      // One piece of the pipeline alone (see dsp-kernels.ts), for comparing the runtimes.
      const name = url.searchParams.get('name') as KernelName;
      if (!KERNELS.includes(name)) return new Response('unknown kernel', { status: 400 });
      const check = runKernel(await loadKissFFT(), name, Number(url.searchParams.get('hops')));
      return Response.json({ check });
    }
    return new Response('not found', { status: 404 });
  },
} satisfies ExportedHandler;
