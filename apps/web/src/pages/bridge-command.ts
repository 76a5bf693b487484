/** The shell line that starts the agent with this token (quoted only where needed). */
export function bridgeCommand(adapter: string, apiUrl: string, token: string): string {
  const quote = (s: string): string => (/^[A-Za-z0-9_./:@%+=,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);
  return `obd2-bridge run --adapter ${quote(adapter)} --api ${quote(apiUrl)} --token ${quote(token)}`;
}
