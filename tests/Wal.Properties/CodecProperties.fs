module Wal.Properties.CodecProperties
