// The spool: the directory state machine of design.md §3. It knows nothing of machine learning.
