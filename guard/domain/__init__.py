"""The pure decision core: plain data and rules, no I/O."""
