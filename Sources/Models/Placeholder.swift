// Models target (under construction).
