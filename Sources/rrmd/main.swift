print("rrmd")
