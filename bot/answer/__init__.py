"""The answering core shared by every face: guard, follow-up, retrieve, compose, check."""
