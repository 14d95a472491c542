// The daemon: spool watcher, job runner, configuration, systemd notification and journald.
