// NN target (under construction).
