import { expect, test } from '@jest/globals';
import { StatusStore } from '../../src/reconciler/status-store.js';

test('an operator that manages some clusters keeps and writes status for those only', () => {
  const store = new StatusStore({ url: 'http://git.invalid/config.git', ref: 'refs/heads/main' }, (c) => c === 'staging');
  const heard: string[][] = [];
  store.subscribe((changed) => heard.push(changed));
  store.updateMany(['dev', 'staging'], (s, cluster) => ({ ...s, desiredVersion: '1.16.1', observedCommit: cluster }));
  expect(store.clusters()).toEqual(['staging']);
  expect(heard).toEqual([['staging']]);
  store.remove(['dev']);
  expect(heard).toEqual([['staging']]);
});
