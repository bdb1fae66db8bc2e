/**
 * A numeric `[vars]` setting (wrangler.toml, .dev.vars): vars arrive as
 * strings, and a missing, non-numeric or non-positive one falls back to the
 * default rather than turning a limit into NaN or zero.
 */
export function numberVar(value: string | undefined, fallback: number): number {
  const n = value === undefined ? NaN : Number(value);
  return Number.isFinite(n) && n > 0 ? n : fallback;
}
