import type { Connection } from '@temporalio/client';
import { loadClientConnectConfig } from '@temporalio/envconfig';
import type { Config } from '../config.js';

/** Where the Temporal frontend is: configured (TEMPORAL_ADDRESS or an envconfig profile), or the embedded server. */
export interface TemporalTarget {
  address: string;
  namespace: string;
  embedded: boolean;
  connectionOptions: Parameters<typeof Connection.connect>[0];
}

export function temporalTarget(config: Config): TemporalTarget {
  const loaded = loadClientConnectConfig();
  const address = loaded.connectionOptions.address;
  if (address) {
    return {
      address,
      namespace: loaded.namespace ?? config.TEMPORAL_NAMESPACE,
      embedded: false,
      connectionOptions: loaded.connectionOptions,
    };
  }
  const embedded = `127.0.0.1:${config.TEMPORAL_PORT}`;
  return {
    address: embedded,
    namespace: config.TEMPORAL_NAMESPACE,
    embedded: true,
    connectionOptions: { address: embedded },
  };
}
