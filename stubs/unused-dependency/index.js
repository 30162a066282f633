// ftp-s3-bridge installs this package in place of dependencies of ftp-srv that the bridge never
// runs (package.json "overrides"; the list and the reasons are in docs/supply-chain.md). Loading it
// is a bug: the stack of this error names the module that required it.
throw new Error(
  'a dependency that ftp-s3-bridge replaces with an empty stand-in was loaded (see docs/supply-chain.md)',
);
