/**
 * Round to the nearest integer, ties to even: Python's round(), and the `rne` of
 * docs/ARCHITECTURE.md. Math.round sends ties towards +Infinity, so odd tie results step back.
 */
export function roundHalfToEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
