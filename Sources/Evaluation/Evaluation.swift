// The Evaluation target: the robustness protocol of `rrmd evaluate` and the report writers
// (JSON, Markdown, SVG). It sits above Training so that it can load and attack any model.
