"""The trial's domain: who may do what (auth, access), the trial's writes and reads (trial), the audit trail."""
