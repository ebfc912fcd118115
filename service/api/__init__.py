"""HTTP layer shared by every domain router: dependencies, error bodies, multipart parsing."""
