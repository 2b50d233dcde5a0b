/**
 * The bundle's entry point and the action's only import-time side effect: one bundle serves both
 * `runs.main` and `runs.post`, told apart by the state main saved (as actions/checkout does).
 */
import { run, runPost } from "./main.ts";
import { isPost } from "./state-helper.ts";

// Stack traces name src/ files and lines through dist/index.js.map (Node's own source-map support).
process.setSourceMapsEnabled(true);

if (isPost()) {
  void runPost();
} else {
  void run();
}
