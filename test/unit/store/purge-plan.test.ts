// Which artifacts a store purge removes (tasks/store/purge-plan.ts).
import { describe, expect, it } from 'vitest';
import { planArtifactPurge } from '../../../tasks/store/purge-plan.js';
import { A, B, C, D } from '../../helpers/unit.js';

describe('planArtifactPurge', () => {
  it('keeps the newest `keep`, oldest removed first', () => {
    expect(planArtifactPurge([C, A, D, B], 2, D, new Set())).toEqual({ kept: [C, D], removed: [A, B] });
  });
  it('never removes latest or an artifact live anywhere, whatever keep says', () => {
    expect(planArtifactPurge([A, B, C, D], 1, B, new Set([A]))).toEqual({ kept: [A, B, D], removed: [C] });
  });
  it('removes nothing when there are no more than keep', () => {
    expect(planArtifactPurge([A, B], 5, undefined, new Set())).toEqual({ kept: [A, B], removed: [] });
  });
});
