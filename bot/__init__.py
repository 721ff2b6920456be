"""mesobot: the enquiry assistant of a mesotherapy training academy in London."""
