// Data target (under construction).
