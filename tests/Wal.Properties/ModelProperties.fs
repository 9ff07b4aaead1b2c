module Wal.Properties.ModelProperties
