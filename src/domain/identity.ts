// How client identities are compared: emails by case and plus-address, names by case and spacing.
// Pure functions; the store hashes what these return.

/** "Jane.Doe+therapy@Example.COM " → "jane.doe@example.com". Returns undefined for a non-address. */
export function normaliseEmail(raw: string): string | undefined {
  const trimmed = raw.trim().toLowerCase();
  const at = trimmed.lastIndexOf('@');
  if (at <= 0 || at === trimmed.length - 1) return undefined;
  const local = trimmed.slice(0, at).split('+')[0]!;
  const domain = trimmed.slice(at + 1);
  if (local === '' || !/^[a-z0-9.-]+\.[a-z]{2,}$/.test(domain)) return undefined;
  return `${local}@${domain}`;
}

/** "  Jane   DOE " → "jane doe": the form a title-derived name is matched by. */
export function normaliseName(raw: string): string {
  return raw.normalize('NFC').trim().replace(/\s+/g, ' ').toLowerCase();
}
