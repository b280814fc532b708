import { defineSearchAttributeKey } from '@temporalio/common';

/** Custom search attributes ragline sets on query workflows, so the Temporal UI can filter by them. */
export const tenantSearchAttribute = defineSearchAttributeKey('RaglineTenant', 'KEYWORD');
export const cacheHitSearchAttribute = defineSearchAttributeKey('RaglineCacheHit', 'BOOL');
export const qualityTierSearchAttribute = defineSearchAttributeKey('RaglineQualityTier', 'KEYWORD');

/** Types as `temporal server start-dev --search-attribute` and the operator API spell them. */
export const SEARCH_ATTRIBUTE_TYPES = {
  RaglineTenant: 'Keyword',
  RaglineCacheHit: 'Bool',
  RaglineQualityTier: 'Keyword',
} as const;
