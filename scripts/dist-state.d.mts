export const ROOT: string;
export const SRC: string;
export const DIST: string;
export const BUILT_STAMP: string;
export function filesUnder(dir: string): string[];
export function isCheckout(): boolean;
export function distIsFresh(): boolean;
