// The fingerprinting façade: presets, the streaming fingerprinter, the
// matcher and the resampler, the same in workerd, the CLI and the benchmark.
export * from './config.ts';
export * from './landmarks.ts';
export * from './resampler.ts';
export * from './stream.ts';
export * from './matcher.ts';
export * from './memory-index.ts';
export * from './live.ts';
