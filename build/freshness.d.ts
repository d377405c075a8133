// Types for build/freshness.js (plain JS so bin/pvmigrate.js can run it before any TypeScript loader).
export declare const STAMP_FILE: string;
export declare function newestSourceMtime(root: string): number;
export declare function freshBuild(root: string): string | undefined;
