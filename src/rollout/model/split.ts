/** How traffic is split between the versions: two subsets of one host, or two hosts (Services). */
export type Split =
  | {
      readonly mode: "subset";
      readonly stableSubset: string;
      readonly canarySubset: string;
      readonly host?: string;
    }
  | { readonly mode: "host"; readonly stableHost: string; readonly canaryHost: string };
