import { destination, type Logger, pino } from 'pino';

export type { Logger } from 'pino';

let root: Logger | undefined;

/**
 * The process-wide logger: JSON lines on stderr, level from CAIRN_LOG_LEVEL (default `info`;
 * tests run with `warn`). Components take a child logger so every line names its source.
 */
export function rootLogger(): Logger {
  root ??= pino({ level: process.env.CAIRN_LOG_LEVEL ?? 'info', base: { pid: process.pid } }, destination(2));
  return root;
}

export function componentLogger(component: string): Logger {
  return rootLogger().child({ component });
}
