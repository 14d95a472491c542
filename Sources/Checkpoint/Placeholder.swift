// Checkpoint target (under construction).
