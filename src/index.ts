/**
 * The bundle's entry point and the action's only import-time side effect: one bundle serves both
 * `runs.main` and `runs.post`, told apart by the state main saved (as actions/checkout does).
 */
import { run, runPost } from "./main.ts";
import { isPost } from "./state-helper.ts";

// Node maps stacks only for code loaded after this call, so it cannot map this bundle itself (it
// is already loaded); it does map anything loaded later. A crash's stack is mapped to src/ by
// errorStack() (error-message.ts), which reads dist/index.js.map.
process.setSourceMapsEnabled(true);

if (isPost()) {
  void runPost();
} else {
  void run();
}
