import pino from 'pino';
import type { Logger } from 'pino';

/** One shared no-op logger: a pino instance per client would open a stdout stream each. */
export const SILENT_LOGGER: Logger = pino({ level: 'silent', enabled: false });
