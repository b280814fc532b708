import { randomUUID } from 'node:crypto';
import { QdrantClient } from '@qdrant/js-client-rest';
import { QdrantStore } from '../../lib/retrieval/qdrant-store.js';
import { describeStoreContract } from '../support/store-contract.js';

// Qdrant cannot run on every machine; without QDRANT_URL the suite is registered as skipped, not silently absent.
const url = process.env.QDRANT_URL?.trim() || undefined;
const apiKey = process.env.QDRANT_API_KEY?.trim() || undefined;

describeStoreContract(
  'qdrant',
  async () => {
    // A collection per test keeps runs independent; dropped afterwards.
    const collection = `ragline_test_${randomUUID().slice(0, 8)}`;
    const store = new QdrantStore({ url: url!, apiKey, collection });
    return {
      store,
      dispose: async () => {
        await store.close();
        await new QdrantClient({ url: url!, apiKey, checkCompatibility: false }).deleteCollection(collection);
      },
    };
  },
  { skip: url === undefined },
);
