import type { BuildOptions } from "esbuild";

export declare const BROWSER_SDK_OPTIONS: BuildOptions;
