# Sourced by every build of the library as it ships (scripts/ffi-size.sh, android/build-rust.sh,
# ios/build-xcframework.sh): the bundled SQLite without the modules the phone never uses
# (docs/adr/0015). rusqlite's bundled build turns on full-text search (FTS3/4/5), R*Tree, the
# dbstat table, STAT4, soundex and extension loading; the core uses none of them (JSON stays:
# the core calls json_extract). `scripts/test.sh` runs the Kotlin tests against this build too.
# Only the release-ffi profile sees these flags, so the tests' debug builds and the benches
# (whose R*Tree peer needs the module) keep rusqlite's defaults. Also gone: SQL date and time
# functions (the core keeps times as integers and formats them in Rust), the introspection and
# schema pragmas, tracing, auto-vacuum, the test hooks, compound SELECTs (UNION, EXCEPT,
# INTERSECT: the core writes none) and the INSERT…SELECT copy shortcut. Options that change SQLite's grammar
# (OMIT_WINDOWFUNC, OMIT_VACUUM, OMIT_ANALYZE, OMIT_REINDEX) do not build from the amalgamation.
export LIBSQLITE3_FLAGS="-USQLITE_ENABLE_FTS3 -USQLITE_ENABLE_FTS3_PARENTHESIS -USQLITE_ENABLE_FTS5
  -USQLITE_ENABLE_RTREE -USQLITE_ENABLE_DBSTAT_VTAB -USQLITE_ENABLE_STAT4 -USQLITE_SOUNDEX
  -USQLITE_ENABLE_LOAD_EXTENSION -DSQLITE_OMIT_LOAD_EXTENSION -DSQLITE_OMIT_DEPRECATED
  -DSQLITE_OMIT_SHARED_CACHE -DSQLITE_DEFAULT_MEMSTATUS=0 -DSQLITE_DQS=0
  -DSQLITE_OMIT_PROGRESS_CALLBACK -DSQLITE_OMIT_AUTHORIZATION -DSQLITE_OMIT_COMPLETE
  -DSQLITE_OMIT_GET_TABLE -DSQLITE_OMIT_TCL_VARIABLE -DSQLITE_OMIT_COMPILEOPTION_DIAGS
  -DSQLITE_OMIT_DESERIALIZE -DSQLITE_OMIT_UTF16 -DSQLITE_OMIT_EXPLAIN -DSQLITE_MAX_EXPR_DEPTH=0
  -DSQLITE_OMIT_DATETIME_FUNCS -DSQLITE_OMIT_INTROSPECTION_PRAGMAS -DSQLITE_OMIT_TRACE
  -DSQLITE_OMIT_AUTOVACUUM -DSQLITE_UNTESTABLE -DSQLITE_OMIT_COMPOUND_SELECT
  -DSQLITE_OMIT_SCHEMA_PRAGMAS -DSQLITE_OMIT_XFER_OPT"
