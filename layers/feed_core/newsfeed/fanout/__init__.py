"""Fan-out: the push/pull rule (`rule`), the typed jobs (`jobs`) and the job handler."""
