"""The CRM core: contacts (companies, deals, the timeline and tasks follow)."""
