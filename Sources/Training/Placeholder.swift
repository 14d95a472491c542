// Training target (under construction).
