// "Did you mean" hints for unknown keys. A typo in a config key would
// otherwise read as "unknown key", which sends people to the docs for what is
// usually a one-letter slip.

/** Optimal string alignment distance: Levenshtein plus adjacent transpositions. */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[][] = Array.from({ length: rows }, (_, i) =>
    Array.from({ length: cols }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  const at = (i: number, j: number): number => d[i]![j]!;
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        best = Math.min(best, at(i - 2, j - 2) + 1);
      }
      d[i]![j] = best;
    }
  }
  return at(a.length, b.length);
}

/**
 * The known key the user most likely meant, if any. camelCase and kebab-case
 * spellings of a snake_case key are matched outright, since that is the most
 * common way to get a key "wrong" (copying from the JSON/TS side).
 */
export function suggestKey(key: string, known: readonly string[]): string | undefined {
  const snake = key
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/-/g, '_')
    .toLowerCase();
  if (known.includes(snake)) return snake;
  // A singular for a plural key ("primary" for "primaries").
  const plural = known.filter((k) => k === `${snake}s` || k === snake.replace(/y$/, 'ies'));
  if (plural.length === 1) return plural[0];
  // A unit suffix left off ("timeout" for "timeout_ms").
  const extended = known.filter((k) => k.startsWith(`${snake}_`));
  if (extended.length === 1) return extended[0];

  // A truncated or extended word ("warning" for "warn").
  const lower = key.toLowerCase();
  const affixed = known.filter(
    (k) => Math.min(k.length, lower.length) >= 4 && (k.startsWith(lower) || lower.startsWith(k)),
  );
  if (affixed.length === 1) return affixed[0];

  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const distance = editDistance(key.toLowerCase(), candidate);
    // Short keys are one or two edits away from almost anything; only
    // suggest when the typo is small relative to the word.
    if (distance <= 2 && distance * 2 < Math.max(key.length, candidate.length) && distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}
