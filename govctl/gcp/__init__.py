"""The only package that imports ``google.cloud``; everything else sees govctl types."""
