"""The campaign file: its declarations, rules and loyalty programs, parsed into a CampaignSet."""
