def can_shift(a, b):
    return len(a) == len(b) and b in a + a
