/**
 * Control characters in a prompt. A NUL or an escape code is never meant as part of an image
 * description; providers refuse such prompts (or fail on them as a server error, which would be
 * retried for a minute before the item fails). Tab, line feed and carriage return are ordinary
 * text and stay allowed.
 */

/** C0 controls but tab, LF and CR, and DEL: matching them is the point here. */
// eslint-disable-next-line no-control-regex
const CONTROL_CHARACTER = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/;

/** Why `text` may not be sent as a prompt, or undefined if it may. */
export function controlCharacterProblem(text: string): string | undefined {
  const match = CONTROL_CHARACTER.exec(text);
  if (!match) return undefined;
  const code = match[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0');
  return (
    `prompt contains the control character U+${code} at character ${match.index + 1}; ` +
    'remove it (tabs and line breaks are allowed)'
  );
}
